"""Helpers shared by the test suites (tests/ is put on sys.path by their conftest)."""
