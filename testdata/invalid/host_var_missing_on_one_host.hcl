# each.host.vars.port is set on web1 and web2 but not on web3.
service "api" {
  hosts  = { role = "web" }
  binary = build.app
  args   = ["-listen", ":${each.host.vars.port}"]
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

host "web2" {
  address = "web2.example.internal"
  labels  = { role = "web" }
  vars    = { port = 8082, token = var.pw }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

host "web3" {
  address = "web3.example.internal"
  labels  = { role = "web" }
  vars    = { token = var.pw }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 5:28 No value on host web3
