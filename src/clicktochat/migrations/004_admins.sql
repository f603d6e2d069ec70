-- The dashboard's people: admins who sign in at /admin, and their sessions.

CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,     -- argon2id, with its own salt and parameters (accounts.py)
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
);

-- A session is a random token in a signed cookie; only its SHA-256 is kept, so a copy of the
-- database signs nobody in. Signing out deletes the row; so does removing the admin.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);
