-- migrations/006_mentions_reactions.sql — version 2 messages: mentions,
-- reactions and replies (PROTOCOL.md "Mentions", "Reactions",
-- "Replies"). Upgrades a version 1 database in place: the new columns
-- have constant defaults (no rewrite of the table), the new tables start
-- empty, and messages stored before have no mentions, reactions or
-- reply_to. See docs/storage.md.

-- reply_to: the id of the message this one answers (NULL: none).
-- mentions: the mentioned usernames, sorted, each once, separated by one
-- space (NULL: none); what message objects carry, resolved against the
-- room's members when the text was sent or last edited.
-- mention_room: 1 when the text holds @room.
-- reacted: 1 once the message had a reaction (reads look the reactions
-- up only then); never reset.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mention_room INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reacted INTEGER NOT NULL DEFAULT 0;

-- The per-member mention counts of room states, by index: one row per
-- live message that mentions a user by name, for each mentioned member
-- other than its author (a message with @room has none: the index below
-- counts it for everyone). Counting a member's unread mentions is a
-- range of (user_id, room_id, message_id > read_seq): as long as the
-- unread mentions, not the room's history.
CREATE TABLE mentions (
	user_id INTEGER NOT NULL,
	room_id INTEGER NOT NULL,
	message_id INTEGER NOT NULL,
	PRIMARY KEY (user_id, room_id, message_id)
) WITHOUT ROWID;
-- Edits and deletes drop a message's rows.
CREATE INDEX mentions_message ON mentions (message_id);
-- @room messages of a room, live ones only: their own range per room.
CREATE INDEX messages_room_mention ON messages (room_id, id, user_id)
	WHERE mention_room = 1 AND deleted = 0;

-- Reactions: one row per (message, emoji, user). emoji_ord orders the
-- emojis (the seq at which the emoji entered the message's list; rows of
-- one emoji share it), ord the users of an emoji (the seq of the
-- reaction). Rows of the same message are one range of the key: a burst
-- of reactions writes these rows and the message's seq, never the text.
CREATE TABLE reactions (
	message_id INTEGER NOT NULL,
	emoji TEXT NOT NULL,
	user_id INTEGER NOT NULL,
	emoji_ord INTEGER NOT NULL,
	ord INTEGER NOT NULL,
	PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;

-- A tombstone has no mentions and no reactions (whoever deletes it), and
-- a message that goes (chatd room del) takes its rows along.
CREATE TRIGGER messages_v2_tombstone AFTER UPDATE OF deleted ON messages
WHEN new.deleted = 1
BEGIN
	DELETE FROM mentions WHERE message_id = new.id;
	DELETE FROM reactions WHERE message_id = new.id;
END;

CREATE TRIGGER messages_v2_gone AFTER DELETE ON messages
BEGIN
	DELETE FROM mentions WHERE message_id = old.id;
	DELETE FROM reactions WHERE message_id = old.id;
END;
