"""The built-in mapping files, installed as the package ``bridge._builtin_mappings``.

Data, not code: this file only makes the folder a package, so that the wheel carries the YAML files
beside the code and ``importlib.resources`` finds them (see bridge/mapping/files.py).
"""
