"""The demo: a FHIR R4 server with synthetic data protected by the resource-server kit
(:mod:`authserver.demo.fhir`, ``authserver fhir-demo``) and the demo app that
``authserver demo`` starts beside the authorization server."""

from authserver.demo.fhir import create_fhir_app

__all__ = ["create_fhir_app"]
