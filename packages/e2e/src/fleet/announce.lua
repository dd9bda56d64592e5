-- wrk script for the announce job: every request is another peer's announce.
-- Peers differ by port (all from 127.0.0.1: wrk cannot vary the source
-- address), so the owner runs with --tracker-max-per-address raised.
-- Arguments: <info_hash as 40 hex digits> <peers> <delay ms between a
-- connection's requests> <numwant>.
local counter = 0
local threads = {}

local function percent(hex)
  return (hex:gsub("..", "%%%0"))
end

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  info_hash = percent(args[1])
  peers = tonumber(args[2])
  pause = tonumber(args[3])
  numwant = args[4]
  -- Each thread walks its own share of the peers, so together they cover them all.
  counter = id
  stride = #args >= 5 and tonumber(args[5]) or 1
end

function request()
  local peer = counter % peers
  counter = counter + stride
  -- A stock peer id, unique per peer: "-TS0001-" then 12 digits.
  local peer_id = string.format("-TS0001-%012d", peer)
  local path = string.format(
    "/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=%s",
    info_hash, peer_id, 10000 + peer, (peer % 10 == 0) and 0 or 1000, numwant)
  return wrk.format("GET", path)
end

function delay()
  return pause
end
