# Locals are evaluated once, not per host.
locals {
  port = each.host.vars.port
}

service "api" {
  hosts  = ["web1"]
  binary = build.app
}


variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  vars    = { port = 8081, token = var.pw }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 3:10 Reference not allowed here
