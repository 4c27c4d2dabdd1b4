# A host's vars are part of each.host: a cycle.
service "api" {
  hosts  = ["web1"]
  binary = build.app
}

host "web4" {
  address = "web4.example.internal"
  vars    = { port = each.host.vars.port }
  winrm {
    user     = "deploy"
    password = var.pw
  }
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

# ERROR: 9:22 Cycle through each.host
