"""Template filters of the jobs pages.

Runs in: the web process.
"""
