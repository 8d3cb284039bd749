"""Many runs in isolated worker processes: the protocol, the worker, the local pool and the Dask pool.

Nothing here may import the study, the host or a feature: a worker imports only this folder, ``fmu/``,
``errors``, numpy and fmpy.
"""
