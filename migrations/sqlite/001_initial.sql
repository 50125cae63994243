-- migrations/001_initial.sql — the chatd schema, version 1
-- See docs/storage.md for why each index exists.

-- Key/value settings of this database: 'epoch', 'seq_floor'.
CREATE TABLE meta (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));
INSERT INTO meta (key, value) VALUES ('seq_floor', '0');

-- Accounts. A deleted account keeps its row (deleted = 1) so its name is
-- never reused and its messages keep their author.
CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	username TEXT NOT NULL UNIQUE,
	pwhash TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
);

-- Login tokens, by SHA-256 of the token.
CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
	user_id INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Rooms; kind 0 public, 1 direct message. last_seq: the seq of the
-- room's latest change (0 for none).
CREATE TABLE rooms (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	kind INTEGER NOT NULL CHECK (kind IN (0, 1)),
	created_at INTEGER NOT NULL,
	last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rooms_kind_name ON rooms (kind, name);

CREATE TABLE members (
	room_id INTEGER NOT NULL REFERENCES rooms (id),
	user_id INTEGER NOT NULL REFERENCES users (id),
	read_seq INTEGER NOT NULL DEFAULT 0,
	joined_at INTEGER NOT NULL,
	PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id, room_id);

-- Messages. id is the seq of the change that created the message, seq
-- the seq of its latest change; text is NULL once deleted.
CREATE TABLE messages (
	id INTEGER PRIMARY KEY,
	seq INTEGER NOT NULL UNIQUE,
	room_id INTEGER NOT NULL REFERENCES rooms (id),
	user_id INTEGER NOT NULL REFERENCES users (id),
	text TEXT,
	ts INTEGER NOT NULL,
	edited_ts INTEGER NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
	client_msg_id TEXT,
	CHECK ((deleted = 0) = (text IS NOT NULL))
);
-- Paging by id within a room; user_id and deleted make it covering for
-- the unread count of member_rooms.
CREATE INDEX messages_room_id ON messages (room_id, id, user_id, deleted);
-- Resync: a room's changes after a seq, in seq order.
CREATE INDEX messages_room_seq ON messages (room_id, seq);
-- Idempotent sends: one message per (user, client_msg_id), forever.
-- Partial, so messages without a client_msg_id cost nothing here.
CREATE UNIQUE INDEX messages_client ON messages (user_id, client_msg_id)
	WHERE client_msg_id IS NOT NULL;

-- Search. Two external-content FTS5 indexes over messages.text (the text
-- is stored once, in messages): trigrams for substrings of 3 or more
-- characters in any script, unicode61 words for shorter terms. The
-- triggers keep both in step; a deleted message (text NULL) is in
-- neither.
CREATE VIRTUAL TABLE messages_trigram USING fts5 (
	text, content = 'messages', content_rowid = 'id',
	tokenize = 'trigram'
);
CREATE VIRTUAL TABLE messages_words USING fts5 (
	text, content = 'messages', content_rowid = 'id',
	tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.text IS NOT NULL
BEGIN
	INSERT INTO messages_trigram (rowid, text) VALUES (new.id, new.text);
	INSERT INTO messages_words (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.text IS NOT NULL
BEGIN
	INSERT INTO messages_trigram (messages_trigram, rowid, text)
		VALUES ('delete', old.id, old.text);
	INSERT INTO messages_words (messages_words, rowid, text)
		VALUES ('delete', old.id, old.text);
END;

-- One trigger for edits and deletes, so the old text is always taken out
-- before the new text goes in (the two may share tokens).
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages
BEGIN
	INSERT INTO messages_trigram (messages_trigram, rowid, text)
		SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL;
	INSERT INTO messages_words (messages_words, rowid, text)
		SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL;
	INSERT INTO messages_trigram (rowid, text)
		SELECT new.id, new.text WHERE new.text IS NOT NULL;
	INSERT INTO messages_words (rowid, text)
		SELECT new.id, new.text WHERE new.text IS NOT NULL;
END;
