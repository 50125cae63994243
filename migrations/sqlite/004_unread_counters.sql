-- migrations/004_unread_counters.sql — unread counts as maintained
-- counters, not range scans over messages.
--
-- A room state's unread count (messages with id > read_seq, by other
-- users, not deleted) was counted from messages_room_id at every hello:
-- ~0.4 s for a million unread. Now it is rooms.msgs - members.seen:
--   rooms.msgs    every message ever stored in the room, tombstones
--                 included (raised with last_seq, in the row a send
--                 writes anyway);
--   members.seen  how many of those do not count as unread for this
--                 member: the ones up to read_seq, their own, and
--                 unread ones deleted since.
-- A send raises msgs and its author's seen (one row, O(1) whatever the
-- room's size); a delete raises seen of the members who had the message
-- unread; read and join set seen from msgs (see storage/room.c). The
-- counts below rebuild both from the messages, as import does.

ALTER TABLE rooms ADD COLUMN msgs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;

UPDATE rooms SET msgs =
	(SELECT count(*) FROM messages g WHERE g.room_id = rooms.id);
UPDATE members SET seen =
	(SELECT r.msgs FROM rooms r WHERE r.id = members.room_id) -
	(SELECT count(*) FROM messages g
	 WHERE g.room_id = members.room_id AND g.id > members.read_seq
	 AND g.user_id <> members.user_id AND g.deleted = 0);
