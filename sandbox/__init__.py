"""A sandbox EHR for demos and tests: FHIR R4 server, SMART authorization server, chart page.

NOT for patient data: tokens and data live in memory, the clients are whoever the config names.
"""
