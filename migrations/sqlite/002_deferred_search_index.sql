-- Search indexing leaves the send path: a send's transaction stores the
-- message only, and the full-text indexes catch up in batches afterwards
-- (message_index_pending), and always before a search. Messages with id
-- above meta 'fts_upto' are not in the indexes yet; the triggers keep the
-- indexed ones in step with edits and deletes.

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

INSERT INTO meta (key, value)
	VALUES ('fts_upto', (SELECT coalesce(max(id), 0) FROM messages));

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.text IS NOT NULL AND old.id <=
	(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')
BEGIN
	INSERT INTO messages_trigram (messages_trigram, rowid, text)
		VALUES ('delete', old.id, old.text);
	INSERT INTO messages_words (messages_words, rowid, text)
		VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages
WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')
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
