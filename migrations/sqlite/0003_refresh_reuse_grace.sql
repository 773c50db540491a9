-- When a retired refresh token was exchanged once more inside `refresh_reuse_grace_secs`
-- (two refreshes sent at once by one client). A second grace exchange is theft.
ALTER TABLE refresh_tokens ADD COLUMN grace_used_at INTEGER;
