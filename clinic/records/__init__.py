"""The clinical record (prontuário eletrônico, issue 20): encounters, specialty templates,
vitals and wellness scales, CID-10, signing and the hash chain, access by care relationship,
attachments. A sub-app of clinic above its core and messaging; scheduling (above it) opens
encounters through its services, and it never imports scheduling."""
