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

return M
