-- wrk script for the miss storms of bench/run: every request asks for one of
-- NKEYS distinct keys (a query string on the same origin file), walked in
-- order from key 0, the threads interleaved so that the first NKEYS requests
-- are NKEYS different cold keys. SALT makes each repetition's keys new.
--   wrk ... -s missstorm.lua URL -- PATH SALT NKEYS NTHREADS
local counter, nthreads = 0, 1
local path, salt, nkeys
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   path = args[1]
   salt = args[2]
   nkeys = tonumber(args[3])
   nthreads = tonumber(args[4])
end

function request()
   local k = (counter * nthreads + id) % nkeys
   counter = counter + 1
   return wrk.format("GET", path .. "?ms=" .. salt .. "-" .. k)
end
