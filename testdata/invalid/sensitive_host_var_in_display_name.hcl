# A sensitive host var cannot be shown in plans.
service "api" {
  hosts        = ["web1"]
  binary       = build.app
  display_name = "API ${each.host.vars.token}"
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

# ERROR: 5:18 Sensitive value not allowed here
