-- A chat's start no longer keeps the visitor key of the click that began it, nor does the click's
-- ref code: the same key is on that visitor's click rows, so one join named, for a customer who
-- wrote in, every click they made that day (time, device, referrer, campaign): "clicks name no
-- one" held only until a chat began (found by a privacy review). The link, campaign, agent and
-- the click's time stay; the columns stay, empty.
UPDATE click_refs SET visitor = NULL WHERE visitor IS NOT NULL;
UPDATE chat_starts SET visitor = NULL WHERE visitor IS NOT NULL;
