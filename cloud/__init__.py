"""The compact cloud service: HTTP API, job store, releases.

Kept free of imports so that `cloud.container` can be used by stations without the web stack.
"""
