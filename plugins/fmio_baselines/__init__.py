"""Built-in baseline methods: random, de, ga."""
