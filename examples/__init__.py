"""Runnable examples. `examples.demo` is the app that reproduces every seed scenario."""
