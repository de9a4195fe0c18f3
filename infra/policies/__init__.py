"""Project checkov checks (checkov loads only directories with an __init__.py)."""
