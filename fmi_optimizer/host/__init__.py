"""The plugin host: the loader (entry points, plugins folder, objects), the KPI functions, routing."""
