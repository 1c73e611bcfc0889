-- 0009: the file family records truncates (issue 17): an open with O_TRUNC, creat, truncate or
-- ftruncate is access 'truncate' (proto FileAccess.Access 6), and truncate/ftruncate are op
-- 'truncate' (FileAccess.Op 7), so the Landlock advice grants TRUNCATE only where one was seen.
-- Adding values to an Enum is a metadata change, allowed on a sorting-key column as well.

ALTER TABLE ebbflow.file_accesses
    MODIFY COLUMN access Enum8('read' = 1, 'write' = 2, 'exec' = 3, 'create' = 4, 'remove' = 5, 'truncate' = 6),
    MODIFY COLUMN op Enum8('open' = 1, 'exec' = 2, 'unlink' = 3, 'rmdir' = 4, 'mkdir' = 5, 'rename' = 6, 'truncate' = 7);

ALTER TABLE ebbflow.file_accesses_1m
    MODIFY COLUMN access Enum8('read' = 1, 'write' = 2, 'exec' = 3, 'create' = 4, 'remove' = 5, 'truncate' = 6);
