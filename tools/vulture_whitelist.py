"""Names vulture (``make deadcode``) reports that are used in ways it cannot see.

Each line names the use; vulture reads this file as code that uses the names.
"""
# ruff: noqa
