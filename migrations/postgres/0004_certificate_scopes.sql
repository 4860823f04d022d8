-- Certificate identities are scoped by the profile that read them (policies/certificates.toml):
-- a profile marked `authoritative_personal_number` keeps the keys "pn:<number>" and
-- "dn:<SHA-256 of issuer and subject names>"; any other profile's keys are
-- "<profile>/<anchor key>/pn:<number>" or "<profile>/<anchor key>/dn:<…>", so that a CA which is
-- not the authority on personal numbers never finds an account another CA's certificate made.
-- Each row now also records who vouched for it: the profile and the SHA-256 (hex) of the trust
-- anchor's SubjectPublicKeyInfo. Rows written before this migration have NULL in both; their
-- keys are read as they always were, by the authoritative profile.
ALTER TABLE certificate_identities ADD COLUMN profile TEXT;
ALTER TABLE certificate_identities ADD COLUMN anchor_key TEXT;
