"""The IPP Everywhere submission endpoint (`/ipp/print`): RFC 8010/8011 over the cloud's domain.

Modules: `jobs` (integer job-ids and the IPP view of parked jobs), `printer` (the queue's printer
attributes), `job_attributes` (job template checks and job attribute groups), `operations` (one
handler per operation), `endpoint` (HTTP: authentication, incremental header parsing, streaming).
"""
