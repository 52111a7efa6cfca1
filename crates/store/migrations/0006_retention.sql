-- When a recording may be deleted (NULL: never) and when the reaper
-- deletes it (NULL: never), fixed when it closes.
ALTER TABLE recordings ADD COLUMN retain_until INTEGER;
ALTER TABLE recordings ADD COLUMN delete_after INTEGER;
