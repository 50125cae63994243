-- migrations/007_files.sql — file attachments (see docs/files.md)

-- One row per upload. The bytes are in the files directory under their
-- SHA-256 (hash), stored once however many rows share them. id is the
-- opaque public id (random hex). message_id is NULL until a send
-- attaches the file; an unattached file older than 24 hours is swept.
-- Deleting a message deletes its rows; bytes whose hash no row names
-- any more are then removed from the directory.
CREATE TABLE files (
	id TEXT PRIMARY KEY,
	room_id INTEGER NOT NULL REFERENCES rooms (id),
	user_id INTEGER NOT NULL REFERENCES users (id),
	message_id INTEGER REFERENCES messages (id),
	pos INTEGER NOT NULL DEFAULT 0,
	name TEXT NOT NULL,
	type TEXT NOT NULL,
	size INTEGER NOT NULL CHECK (size >= 0),
	hash TEXT NOT NULL CHECK (length(hash) = 64),
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
-- A message's files, in order.
CREATE INDEX files_message ON files (message_id, pos)
	WHERE message_id IS NOT NULL;
-- The 24-hour sweep of unattached files.
CREATE INDEX files_unattached ON files (created_at)
	WHERE message_id IS NULL;
-- Whether other rows still need some bytes.
CREATE INDEX files_hash ON files (hash);
-- room del.
CREATE INDEX files_room ON files (room_id);

-- A message's files as its "files" member: a JSON array of
-- {"id","name","size","type"}, written once at the send (the rows above
-- never change while attached); NULL: none, and on a tombstone.
ALTER TABLE messages ADD COLUMN files TEXT;
