-- Every scoring updates each of its leads (score, stage, scored_at). With room left on a page, an
-- update that changes no indexed column stays on the page (a HOT update) and writes none of the
-- table's six indexes: rescoring 500 leads whose score held took 6-7 ms instead of 16-26 ms.
-- Pages written from now on keep a fifth of their space for such updates.
ALTER TABLE "leads" SET (fillfactor = 80);
