service "a" {
  hosts      = ["web1"]
  binary     = build.app
  depends_on = [service.b]
}

service "b" {
  hosts      = ["web1"]
  binary     = build.app
  depends_on = [service.c]
}

service "c" {
  hosts      = ["web1"]
  binary     = build.app
  depends_on = ["a"]
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
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

build "app" {
  package = "./cmd/app"
}

# ERROR: 4:16 Dependency cycle
