-- One wrk script for every scripted run, configured through the environment:
--   BENCH_BODY=order     POST an order with two lines (product ids from BENCH_PRODUCTS,
--                        "1,2,3"; restaurant BENCH_RESTAURANT), each request with the next
--                        bearer token of the file BENCH_TOKENS (one token a line).
--   (unset)              the URL given to wrk, as it is (a static request).
-- Every run counts answers by status; done() prints "STATUS <code> <count>" lines.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

if os.getenv("BENCH_BODY") == "order" then
  local tokens, products, n = {}, {}, 0
  local restaurant = os.getenv("BENCH_RESTAURANT")

  function init(args)
    local file = os.getenv("BENCH_TOKENS")
    if file then
      for line in io.lines(file) do
        if #line > 0 then table.insert(tokens, line) end
      end
    end
    for id in string.gmatch(os.getenv("BENCH_PRODUCTS"), "%d+") do
      table.insert(products, tonumber(id))
    end
    math.randomseed(os.time() * 1000 + thread_no)
    n = thread_no * 7919
  end

  function request()
    n = n + 1
    local headers = {["Content-Type"] = "application/json"}
    if #tokens > 0 then
      headers["Authorization"] = "Bearer " .. tokens[n % #tokens + 1]
    end
    local a = products[math.random(#products)]
    local b = products[math.random(#products)]
    local body = string.format(
      '{"restaurant_id":%s,"items":[{"product_id":%d,"quantity":%d},{"product_id":%d,"quantity":1}]}',
      restaurant, a, math.random(3), b)
    return wrk.format("POST", nil, headers, body)
  end
end

counts = {}

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    if c then
      for code, count in pairs(c) do total[code] = (total[code] or 0) + count end
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("STATUS %s %d\n", tostring(code), count))
  end
end
