-- docs/reference.md "When a key changes: on_update".
local helper = require("spec.helper")
local quay = helper.quay

describe("on_update", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  local function schema(rule, extra)
    local User = db:model("User", { email = quay.string { unique = true } })
    local opts = { to_field = "email", column = "user_email", on_update = rule,
                   related_name = "posts", on_delete = quay.CASCADE }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local Post = db:model("Post", { title = quay.string(),
      user = quay.belongs_to("User", opts) })
    db:create_tables()
    return User, Post
  end

  it("CASCADE (the default) rewrites dependents' keys through save", function()
    local User, Post = schema(nil)
    local u = User:create { email = "old@x" }
    Post:create { title = "a", user = u }
    Post:create { title = "b", user = u }
    u.email = "new@x"
    u:save()
    assert.equal(2, Post:filter { user_email = "new@x" }:count())
    assert.equal(2, #User:get { email = "new@x" }.posts)
  end)

  it("CASCADE applies through qs:update too", function()
    local User, Post = schema(quay.CASCADE)
    local u = User:create { email = "old@x" }
    Post:create { title = "a", user = u }
    assert.equal(1, User:filter { email = "old@x" }:update { email = "new@x" })
    assert.equal("new@x", Post:first().user_email)
  end)

  it("SET_NULL and SET_DEFAULT update dependents", function()
    local User, Post = schema(quay.SET_NULL, { null = true })
    local u = User:create { email = "old@x" }
    Post:create { title = "a", user = u }
    u.email = "new@x"
    u:save()
    assert.is_nil(Post:first().user_email)
    assert.is_nil(Post:first().user)
  end)

  it("PROTECT and RESTRICT refuse and change nothing", function()
    local User, Post = schema(quay.PROTECT)
    local u = User:create { email = "old@x" }
    Post:create { title = "a", user = u }
    u.email = "new@x"
    local err = helper.raises("protected", u.save, u)
    helper.mentions(err, "User", "email", "Post")
    assert.equal("old@x", User:first().email)
    assert.equal("old@x", Post:first().user_email)
    helper.raises("protected", function()
      return User:query():update { email = "z@x" } end)
    assert.equal("old@x", User:first().email)
    -- unreferenced rows may change
    local v = User:create { email = "free@x" }
    v.email = "moved@x"
    v:save()
    assert.equal(1, User:filter { email = "moved@x" }:count())
  end)

  it("primary key changes cascade to belongs_to and join tables", function()
    local A = db:model("A", { code = quay.string { primary_key = true },
      bs = quay.many_to_many("B", { related_name = "as" }) })
    local B = db:model("B", { n = quay.integer() })
    local C = db:model("C", { a = quay.belongs_to("A", { on_delete = quay.CASCADE }) })
    db:create_tables()
    local a = A:create { code = "x" }
    local b = B:create { n = 1 }
    a.bs:add(b)
    C:create { a = a }
    a.code = "y"
    a:save()
    assert.equal(1, C:filter { a_id = "y" }:count())
    assert.equal(1, #A:find("y").bs)
    assert.is_nil(A:find("x"))
  end)
end)
