-- migrations/013 gives SQLite's tables AUTOINCREMENT, so that an id is never given twice.
-- PostgreSQL's identity columns never give an id twice: nothing to do but keep the numbers in step.
SELECT 1;
