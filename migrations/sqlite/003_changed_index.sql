-- migrations/003_changed_index.sql — resync without a second per-room
-- index on every new message.
--
-- messages_room_seq (room_id, seq) put every new message into a second
-- per-room B-tree: in a group commit over many rooms that is one more WAL
-- page per message. A new message has seq = id, so the room's changes
-- after a seq are the messages with id above it that were never changed
-- (messages_room_id, in id order = seq order) and the changed ones
-- (seq <> id: edited or deleted) with seq above it, which this partial
-- index alone holds. See message_changed in storage/message.c.

DROP INDEX messages_room_seq;
CREATE INDEX messages_room_changed ON messages (room_id, seq)
	WHERE seq <> id;
