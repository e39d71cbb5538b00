"""Calico v3 resources: shapes, defaults, validation, store keys and the selector language.

A pure core (no asyncio, socket, time or os). Entry points: `resource.parse_resource` /
`Resource.to_dict`, `manifest.parse_manifest`, `keys.key_of` / `keys.parse_key`,
`values.encode_value` / `values.decode_value`, `selector.parse_selector`. See
docs/resources.md.
"""
