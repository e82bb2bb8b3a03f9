-- scripts/benchmark/loops.lua: the Lua side of each workload, shared by the
-- Quay script (quay_side.lua) and the floor (floor.c loads this file), so
-- both run exactly the same Lua code over the records they built.
local M = {}

-- W1: posts with their author; sum of author name and title lengths.
function M.w1(posts)
  local n = 0
  for _, p in ipairs(posts) do n = n + #p.author.name + #p.title end
  return n
end

-- W2: users -> posts -> tags; sum of tag name lengths.
function M.w2(users)
  local n = 0
  for _, u in ipairs(users) do
    for _, p in ipairs(u.posts) do
      for _, t in ipairs(p.tags) do n = n + #t.name end
    end
  end
  return n
end

-- W3: one run's rows; count and id sum.
function M.w3(posts)
  local c, s = 0, 0
  for _, p in ipairs(posts) do c = c + 1; s = s + p.id end
  return c, s
end

-- W5: the input rows (built before the clock starts, on both sides).
function M.w5_rows(n, nusers)
  local words = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                  "golf", "hotel", "india", "juliet", "kilo", "lima" }
  local rows, x = {}, 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    local w1, w2 = words[x % 12 + 1], words[(x // 12) % 12 + 1]
    rows[i] = { title = ("New post %d %s %s"):format(i, w1, w2),
                views = x % 10000, author_id = x % nusers + 1 }
  end
  return rows
end

-- W9: the input rows of an upsert of n posts whose keys (ids) start at
-- 50,001, so at scale 1 (100k posts) half of them exist.  Built before the
-- clock starts, on both sides.
function M.w9_rows(n, nusers)
  local rows = M.w5_rows(n, nusers)
  for i, r in ipairs(rows) do
    r.id = 50000 + i
    r.title = "Upserted " .. r.title
  end
  return rows
end

-- W10: the new views of post `id` (different for every post).
function M.w10_value(id)
  return (id * 7919) % 100000
end

-- W6: 2,000 posts; sum of their authors' name lengths.
function M.w6(posts)
  local n = 0
  for _, p in ipairs(posts) do n = n + #p.author.name end
  return n
end

-- PIPE: one page of posts with author, tags and comments; sum of the
-- lengths of the author's name, the tag names and the comment bodies.
function M.pipe(posts)
  local n = 0
  for _, p in ipairs(posts) do
    n = n + #p.author.name
    for _, t in ipairs(p.tags) do n = n + #t.name end
    for _, c in ipairs(p.comments) do n = n + #c.body end
  end
  return n
end

-- W7: users with n_posts, views, last, n_comments; a sum over every value.
function M.w7(users)
  local n = 0
  for _, u in ipairs(users) do
    local last = u.last
    n = n + u.n_posts + (u.views or 0) + u.n_comments + (last and #last or 0)
  end
  return n
end

-- A hash of a list of values in order (wrapping integer arithmetic); a
-- value that is not an integer counts in `odd` and hashes as 0.
local function mix(h, x, odd)
  if math.type(x) ~= "integer" then return h * 1000003, odd + 1 end
  return h * 1000003 + x, odd
end
local function digits(s)           -- "2024-06-06 15:19:16" -> 20240606151916
  return s and math.tointeger(tonumber((s:gsub("%D", "")))) or -1
end

-- The checks of W7 and W8 run after the clock: totals, and a hash of every
-- value of every row in order (so the floor must build the same list).
function M.w7_check(users)
  local h, odd, np, nv, nc, ns = 0, 0, 0, 0, 0, 0
  for _, u in ipairs(users) do
    h, odd = mix(h, u.id, odd)
    h, odd = mix(h, u.n_posts, odd)
    h, odd = mix(h, u.views or -1, odd)
    h, odd = mix(h, digits(u.last), odd)
    h, odd = mix(h, u.n_comments, odd)
    h, odd = mix(h, #u.name + #u.email, odd)
    np, nv, nc = np + u.n_posts, nv + (u.views or 0), nc + u.n_comments
    if u.last then ns = ns + 1 end
  end
  return ("users=%d,posts=%d,views=%d,comments=%d,dates=%d,nonint=%d,hash=%x")
    :format(#users, np, nv, nc, ns, odd, h)
end

-- W8: (author, month) groups with n and total_views; a sum over every value.
function M.w8(rows)
  local n = 0
  for _, r in ipairs(rows) do
    local month = r.month
    n = n + r.author + r.n + (r.total_views or 0) + (month and #month or 0)
  end
  return n
end

function M.w8_check(rows)
  local h, odd, np, nv = 0, 0, 0, 0
  for _, r in ipairs(rows) do
    h, odd = mix(h, r.author, odd)
    h, odd = mix(h, digits(r.month), odd)
    h, odd = mix(h, r.n, odd)
    h, odd = mix(h, r.total_views or -1, odd)
    np, nv = np + r.n, nv + (r.total_views or 0)
  end
  return ("groups=%d,posts=%d,views=%d,nonint=%d,hash=%x"):format(#rows, np, nv, odd, h)
end

return M
