"""The dashboard's pages, a module per part of the site (jobs/urls.py routes to them).

Runs in: the web process.
"""
