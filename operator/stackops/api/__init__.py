"""The OpenStackCloud API: pydantic models, release rules and CRD generation. No I/O."""
