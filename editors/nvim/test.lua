-- Drives `nudge lsp` from Debian's Neovim (0.7.2 and later), headless, the way
-- a user's editor does: tests/editors.rs runs
--   NUDGE=… ROOT=<a copy of examples/retail> RESULT=… nvim --headless --clean -c 'luafile editors/nvim/test.lua'
-- Every check that fails is written to RESULT; "ok" when none does.

local nudge, root, result_file = os.getenv("NUDGE"), os.getenv("ROOT"), os.getenv("RESULT")
local failures = {}

local function fail(what)
  table.insert(failures, what)
end

local function finish()
  local f = io.open(result_file, "w")
  if #failures == 0 then
    f:write("ok\n")
  else
    f:write(table.concat(failures, "\n") .. "\n")
  end
  f:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  local client_id = vim.lsp.start_client({
    name = "nudge",
    cmd = { nudge, "lsp" },
    root_dir = root,
  })
  if not client_id then
    fail("the client did not start")
    return
  end
  local client = vim.lsp.get_client_by_id(client_id)
  local enc = "utf-16"

  local function open(rel)
    vim.cmd("edit " .. vim.fn.fnameescape(root .. "/" .. rel))
    local buf = vim.api.nvim_get_current_buf()
    vim.lsp.buf_attach_client(buf, client_id)
    return buf
  end

  local function request(method, params, buf)
    local r = client.request_sync(method, params, 10000, buf)
    if not r then
      fail(method .. ": no answer")
      return nil
    end
    if r.err then
      fail(method .. ": " .. vim.inspect(r.err))
      return nil
    end
    return r.result
  end

  local function position(buf, line, col)
    return {
      textDocument = { uri = vim.uri_from_bufnr(buf) },
      position = { line = line, character = col },
    }
  end

  local buf = open("journeys/reviews.nudge")
  if not vim.wait(10000, function() return client.initialized end, 50) then
    fail("the server did not initialize")
    return
  end

  -- A clean buffer of the retail set: no diagnostics once they arrive.
  vim.wait(1500, function() return false end, 50)
  local initial = vim.diagnostic.get(buf)
  if #initial ~= 0 then
    fail("a clean file has diagnostics: " .. vim.inspect(initial))
  end

  -- Break it: the diagnostics come; mend it: they clear.
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, { "journey broken {" })
  if not vim.wait(10000, function() return #vim.diagnostic.get(buf) > 0 end, 50) then
    fail("no diagnostics on a broken buffer")
  end
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  if not vim.wait(10000, function() return #vim.diagnostic.get(buf) == 0 end, 50) then
    fail("diagnostics did not clear: " .. vim.inspect(vim.diagnostic.get(buf)))
  end

  -- Hover on the trigger event, declared in another file.
  local row
  for i, l in ipairs(lines) do
    if l:find("when order_shipped", 1, true) then
      row = i - 1
    end
  end
  local hover = request("textDocument/hover", position(buf, row, 8), buf)
  local text = hover and vim.inspect(hover.contents) or ""
  if not text:find("order_shipped", 1, true) then
    fail("hover on `order_shipped` says: " .. text)
  end

  -- Completion after `profile.`.
  local at = #lines
  vim.api.nvim_buf_set_lines(buf, at, at, false, { "segment probe = profile." })
  local items = request("textDocument/completion", position(buf, at, 24), buf)
  local labels = {}
  for _, item in ipairs((items and (items.items or items)) or {}) do
    labels[item.label] = true
  end
  if not labels["first_name"] or not labels["tier"] then
    fail("completion after `profile.` lacks first_name/tier: " .. vim.inspect(vim.tbl_keys(labels)))
  end
  vim.api.nvim_buf_set_lines(buf, at, at + 1, false, {})

  -- A line with text outside ASCII: the diagnostic lands on the right column
  -- (the server counts UTF-16 units, Neovim bytes).
  local probe = 'template probe { email { subject: "Inès 🎉 {{profile.nope}}" } }'
  vim.api.nvim_buf_set_lines(buf, at, at, false, { probe })
  local found
  vim.wait(10000, function()
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      if d.lnum == at and d.message:find("nope", 1, true) then
        found = d
      end
    end
    return found ~= nil
  end, 50)
  local want = probe:find("nope", 1, true) - 1
  if not found then
    fail("no diagnostic for `profile.nope`: " .. vim.inspect(vim.diagnostic.get(buf)))
  elseif found.col ~= want then
    fail(("the diagnostic is at byte %d, `nope` at %d"):format(found.col, want))
  end
  vim.api.nvim_buf_set_lines(buf, at, at + 1, false, {})

  -- Formatting: a messy line comes back in the canonical layout.
  vim.api.nvim_buf_set_lines(buf, at, at, false, { "segment   probe   =   profile.tier==\"gold\"" })
  local edits = request("textDocument/formatting", {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    options = { tabSize = 2, insertSpaces = true },
  }, buf)
  if not edits or #edits == 0 then
    fail("formatting changed nothing in a messy buffer")
  else
    vim.lsp.util.apply_text_edits(edits, buf, enc)
    local now = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
    if not now:find('segment probe = profile.tier == "gold"', 1, true) then
      fail("formatted text:\n" .. now)
    end
  end
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)

  -- Rename across files: the event, in the schema, this journey and a test.
  local wait_row, col
  for i, l in ipairs(lines) do
    if l:find("review_submitted", 1, true) then
      wait_row, col = i - 1, l:find("review_submitted", 1, true) - 1
    end
  end
  local params = position(buf, wait_row, col)
  params.newName = "review_posted"
  local edit = request("textDocument/rename", params, buf)
  local files = 0
  for _ in pairs((edit and edit.changes) or {}) do
    files = files + 1
  end
  for _ in pairs((edit and edit.documentChanges) or {}) do
    files = files + 1
  end
  if files < 3 then
    fail("rename edits " .. files .. " files: " .. vim.inspect(edit))
  else
    vim.lsp.util.apply_workspace_edit(edit, enc)
    local schema = vim.fn.bufnr(root .. "/schema.nudge")
    local text = table.concat(vim.api.nvim_buf_get_lines(schema, 0, -1, false), "\n")
    if not text:find("event review_posted", 1, true) then
      fail("the schema was not renamed")
    end
  end

  client.stop()
end)

if not ok then
  fail("error: " .. tostring(err))
end
finish()
