# for_each decides the services, and so what each.host is: a cycle.
service "worker" {
  for_each = each.host.vars
  hosts    = ["web1"]
  binary   = build.app
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

# ERROR: 3:14 Cycle through each.host
