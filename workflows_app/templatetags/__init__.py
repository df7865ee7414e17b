"""Template filters every page may use (registered as builtins in settings: no `{% load %}`)."""
