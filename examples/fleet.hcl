# One configuration for a fleet that is not identical: the web service
# runs on three production hosts, each with its own port and its own
# rendered config file (from the host's vars, read as each.host.vars);
# a worker runs once per queue on the first host (for_each); and the same
# file describes staging, chosen with -env:
#
#   gsd plan -env production     # web1..web3, values from production.gsdvars
#   gsd plan -env staging        # stage1, values from staging.gsdvars

variable "winrm_password" {
  type      = string
  sensitive = true
}

variable "greeting" {
  type        = string
  default     = "hello"
  description = "Set per environment in staging.gsdvars and production.gsdvars."
}

variable "queues" {
  type        = map(number)
  default     = { orders = 9101, billing = 9102 }
  description = "One worker per queue, listening on its port."
}

host "web1" {
  address     = "web1.example.internal"
  environment = "production"
  labels      = { role = "web", worker = "true" }
  vars        = { port = 8081, datacenter = "ams" }
  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

host "web2" {
  address     = "web2.example.internal"
  environment = "production"
  labels      = { role = "web" }
  vars        = { port = 8082, datacenter = "fra" }
  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

host "web3" {
  address     = "web3.example.internal"
  environment = "production"
  labels      = { role = "web" }
  vars        = { port = 8083, datacenter = "lon" }
  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

host "stage1" {
  address     = "stage1.example.internal"
  environment = "staging"
  labels      = { role = "web", worker = "true" }
  vars        = { port = 8081, datacenter = "lab" }
  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

build "hello" {
  package = "./services/hello"
}

service "web" {
  hosts        = { role = "web" }
  binary       = build.hello
  display_name = "Fleet Web"
  description  = "The hello service, on each host's own port."
  args         = ["-listen", ":${each.host.vars.port}", "-config", "C:\\ProgramData\\gsd\\services\\web\\files\\site.yaml"]

  file "site.yaml" {
    # The template reads each.host itself, and what it is given here.
    content = templatefile("templates/site.yaml.tpl", {
      datacenter = each.host.vars.datacenter
      port       = each.host.vars.port
      greeting   = var.greeting
    })
    on_change = "restart"
  }

  health {
    http    = "http://localhost:${each.host.vars.port}/healthz"
    timeout = "30s"
  }

  # An inbound rule named after the service, opening each host's port.
  firewall {
    ports = [each.host.vars.port]
  }

  rollout {
    max_parallel = 1
  }
}

service "worker" {
  for_each     = var.queues # worker-billing and worker-orders
  hosts        = { worker = "true" }
  binary       = build.hello
  display_name = "Fleet worker (${each.key})"
  args         = ["-listen", ":${each.value}"]
  env          = { QUEUE = each.key }

  health {
    tcp     = "localhost:${each.value}"
    timeout = "30s"
  }
}
