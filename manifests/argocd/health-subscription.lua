-- Argo CD health check for gallery-operator.dev/GallerySubscription (Lua 5.1, as Argo CD runs it).
-- Healthy: Ready=True, also while a run is active (runs come and go on schedule; an Application must not wait for
-- them). Degraded: Stalled=True (an invalid spec, or the last runs failed for a permanent reason). Suspended:
-- spec.suspend. Progressing: no status yet, or an unobserved generation.
local hs = {}
local function condition(kind)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the subscription"
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true"
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = obj.status.message or ready.reason
  return hs
end
hs.status = "Progressing"
hs.message = obj.status.message or ""
return hs
