service "api" {
  hosts      = ["web1"]
  binary     = build.app
  depends_on = ["Tcpip", service.api]
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

# ERROR: 4:26 Service depends on itself
