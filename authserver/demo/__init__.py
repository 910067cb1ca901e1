"""The demo's programs that talk to the authorization server over HTTP only: a FHIR R4
server with synthetic data protected by the resource-server kit (:mod:`authserver.demo.fhir`,
its data :mod:`authserver.demo.fhir_data`, ``authserver fhir-demo``) and the demo app
(:mod:`authserver.demo.app`) that ``authserver demo`` starts beside the authorization server.

From ``authserver`` they import only the resource-server kit, the SMART grammar and the JOSE
helpers (``resource``, ``smart``, ``keys``), and ``paths`` to find the shared templates folder.
Seeding and starting the servers are the authorization server's side: :mod:`authserver.cli.demo`
and :mod:`authserver.cli.seed`.
"""
