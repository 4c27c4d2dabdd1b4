# The rollout is the same on every host.
service "api" {
  hosts  = { role = "web" }
  binary = build.app
  rollout {
    max_parallel = each.host.vars.port
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

# ERROR: 6:20 Reference not allowed here
