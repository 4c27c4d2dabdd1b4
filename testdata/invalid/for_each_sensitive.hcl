# for_each keys become service names, shown everywhere.
variable "queues" {
  type      = map(string)
  sensitive = true
  default   = { orders = "a" }
}

service "worker" {
  for_each = var.queues
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

# ERROR: 9:14 Sensitive value not allowed here
