# each.key is only set with for_each.
service "worker" {
  hosts  = ["web1"]
  binary = build.app
  env    = { QUEUE = each.key }
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

# ERROR: 5:22 Reference not allowed here
