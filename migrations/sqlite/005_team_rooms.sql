-- migrations/005_team_rooms.sql — team rooms (PROTOCOL.md version 2):
-- private rooms, topics, member roles, notification levels, bans, and who
-- deleted a message. Upgrades a version 1 database in place: every room,
-- membership, message, seq and read position stays as it was.
--
-- A private room is kind 0 with private = 1 rather than a kind 2: the
-- CHECK on rooms.kind can only change by rebuilding the table, which the
-- foreign keys of members and messages forbid inside the migration's
-- transaction. storage/room.c maps the pair to ROOM_PRIVATE.

ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0
	CHECK (private IN (0, 1));
-- 0-250 code points (checked by chatd); '' for none.
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';

-- role: 0 member, 1 moderator, 2 owner. Rooms from before roles have no
-- owner (every member is 0) until an admin names one.
ALTER TABLE members ADD COLUMN role INTEGER NOT NULL DEFAULT 0
	CHECK (role IN (0, 1, 2));
-- notify: 0 all, 1 mentions, 2 none (a hint for clients only).
ALTER TABLE members ADD COLUMN notify INTEGER NOT NULL DEFAULT 0
	CHECK (notify IN (0, 1, 2));

-- Who may not join, read or search a room until unbanned. A banned user
-- is never a member of the room at the same time.
CREATE TABLE bans (
	room_id INTEGER NOT NULL REFERENCES rooms (id),
	user_id INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- The moderator who deleted someone else's message; NULL when the author
-- did (or the message is live).
ALTER TABLE messages ADD COLUMN deleted_by INTEGER REFERENCES users (id);
