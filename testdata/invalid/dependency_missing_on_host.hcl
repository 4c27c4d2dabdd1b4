host "web2" {
  address = "web2.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

service "db" {
  hosts  = ["web1"]
  binary = build.app
}

service "api" {
  hosts      = ["web1", "web2"]
  binary     = build.app
  depends_on = [service.db]
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

# ERROR: 17:16 Dependency missing on host
