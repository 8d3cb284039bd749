"""The HTML report of a stored study, and the public helpers plugins and features draw sections with."""
