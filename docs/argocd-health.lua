-- Argo CD health of an OpenStackCloud (stackops.dev/v1alpha1), from the status stackops writes.
-- Install: argocd-cm, key resource.customizations.health.stackops.dev_OpenStackCloud (docs/health.md).
hs = {}

local function condition(status, kind)
  if status.conditions ~= nil then
    for _, c in ipairs(status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for stackops to look at the cloud"
  return hs
end

local status = obj.status
if obj.metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "waiting for stackops to look at the changed spec"
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
local degraded = condition(status, "Degraded")
local message = nil
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  message = ready.message
end
if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message or "spec.paused is set"
elseif phase == "Failed" or phase == "Degraded" or (degraded ~= nil and degraded.status == "True") then
  -- a failed step, a bad spec, a failing health check, a crash-looping pod: Ready's message says which
  hs.status = "Degraded"
  hs.message = message or phase
elseif phase == "Ready" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "every service is deployed and healthy"
else -- Pending, Deploying, Upgrading
  hs.status = "Progressing"
  hs.message = message or phase
end
return hs
